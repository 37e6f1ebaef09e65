"""Join a framework's own transaction: SQLAlchemy 2 sessions, Django's `transaction.atomic()`.

Each submodule imports its framework only when called, so outbox-db never depends on one:
``outbox_db.integrations.sqlalchemy.join_session(session)``,
``outbox_db.integrations.django.join_atomic()``.
"""
