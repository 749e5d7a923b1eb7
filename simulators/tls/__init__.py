"""What a device's DICOM TLS endpoint accepts, judged by BCP 195 and the PS3.15 Annex B profiles.

- `probe`: the probes a suite records (versions, cipher suites, client certificates, plain TCP, the certificate presented).
- `bcp195`: the BCP 195 (RFC 9325) suite tables and the PS3.15 B.9-B.13 profile judgement.
- `handshake`: the probing TLS client and its bounded handshakes, over TCP or in memory.
"""
