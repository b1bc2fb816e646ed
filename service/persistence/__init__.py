"""Persistence: the database engine and migrations, the ORM tables, the photo store, the integrity check."""
