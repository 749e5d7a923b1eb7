"""DICOM user identity negotiation (PS3.7 D.3.3.7) with test-double credentials.

- `tokens`: JWT, SAML and Kerberos stand-in tokens, made and verified.
- `credentials`: credential sets, the offers a suite makes from them, the policy that admits one.
- `negotiation`: the requestor's side: identity kinds, the request item, a C-ECHO offering it.
- `policy`: the acceptor's side: what it admits, and the event handlers an SCP binds.
"""
