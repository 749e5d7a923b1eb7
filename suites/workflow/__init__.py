"""Suites for a device that initiates (a modality, a router): IHE Scheduled Workflow seen at the RIS and PACS simulators."""
