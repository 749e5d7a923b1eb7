"""DICOM actors built on pynetdicom: PACS, modality, corpus, and the reference device."""
