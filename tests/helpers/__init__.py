"""What several test modules share: re-measurement, model builders, report pages. No tests here."""
