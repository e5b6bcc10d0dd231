#!/bin/sh
# Runs once, when the PostgreSQL volume is new (docker-entrypoint-initdb.d), as the superuser.
# Tables are created by the services themselves (Alembic migrations at start-up, under a lock:
# any number of instances may race; `lifeline db upgrade` does the same by hand).
# The password comes from the environment (LIFELINE_DB_PASSWORD, from .env), never from a file
# in the repository; psql's :'pw' quotes it as a literal.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v pw="$LIFELINE_DB_PASSWORD" <<'SQL'
CREATE ROLE lifeline LOGIN PASSWORD :'pw';
CREATE DATABASE lifeline OWNER lifeline;
-- The backup agent restores each snapshot into a database of its own to verify it: a role that
-- may create (and drop) databases, and nothing else of ours.
CREATE ROLE lifeline_verify LOGIN CREATEDB PASSWORD :'pw';
CREATE DATABASE lifeline_verify OWNER lifeline_verify;
SQL
