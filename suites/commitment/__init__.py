"""Storage commitment provider: Push Model N-ACTION and the device's N-EVENT-REPORT (PS3.4 J.3)."""
