"""PostgreSQL adapters (asyncpg) implementing favorited.domain.ports."""
