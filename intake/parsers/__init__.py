"""Turning what senders send (archives, documents, spreadsheets) into data."""
