"""The PostgreSQL test server itself: password logins, restarts, isolated databases."""

import psycopg
import pytest


def query(url, statement, *params):
    with psycopg.connect(url, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else None


def test_password_login_is_required(postgres_server, postgres_url):
    assert postgres_server.password in postgres_url
    assert query(postgres_url, "SELECT current_user") == [("finscale",)]
    wrong = postgres_url.replace(postgres_server.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10)
    database = postgres_url.rsplit("/", 1)[1]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_server.url(database, password=False), connect_timeout=10)


def test_restart_drops_connections_and_keeps_data(postgres_server, postgres_url):
    query(postgres_url, "CREATE TABLE kept (value integer)")
    query(postgres_url, "INSERT INTO kept VALUES (%s), (%s)", 1, 2)
    port = postgres_server.port
    conn = psycopg.connect(postgres_url, connect_timeout=10)
    try:
        postgres_server.restart()
        with pytest.raises(psycopg.OperationalError), conn.cursor() as cur:
            cur.execute("SELECT 1")
        assert conn.closed
    finally:
        conn.close()
    assert postgres_server.port == port
    assert query(postgres_url, "SELECT value FROM kept ORDER BY value") == [(1,), (2,)]


def test_created_databases_are_isolated(postgres_server):
    first = postgres_server.create_database("isolation_first")
    second = postgres_server.create_database("isolation_second")
    assert first != second
    query(first, "CREATE TABLE only_here (x integer)")
    assert query(first, "SELECT to_regclass('only_here') IS NOT NULL") == [(True,)]
    assert query(second, "SELECT to_regclass('only_here') IS NOT NULL") == [(False,)]
