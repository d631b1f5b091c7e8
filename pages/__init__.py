"""The app's pages: each reads widgets, calls the core, renders results. No SQL, HTTP or image decoding here."""
