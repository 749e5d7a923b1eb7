"""Reports of a comparison: comparison.json, junit.xml, report.html and allure-results."""
