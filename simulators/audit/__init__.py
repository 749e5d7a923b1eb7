"""DICOM audit logging (PS3.15 A.5) between a device and an audit record repository (ARR).

- `message`: an audit message as data, and its conformance checks.
- `parse` / `build`: untrusted XML bytes to a message, and a message's parts to XML.
- `syslog`: RFC 5424 framing and its transports, UDP (RFC 5426) and TLS (RFC 5425).
- `record`: what the repository saw, one record per message, and its JSON-lines file.
- `repository`: the ARR simulator (`python -m simulators.audit.repository`).
- `sender`: the audit trail a simulated device sends as it works.
"""
