"""The relational store shared by the MANO services (SQLAlchemy 2, Alembic)."""
