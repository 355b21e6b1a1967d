#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d): creates the writer
# role (finsent) and the dashboard's role (finsent_dashboard), and sets their passwords from the Docker secrets
# named by FINSENT_WRITER_PASSWORD_FILE / FINSENT_READER_PASSWORD_FILE. The grants on the tables follow once the
# first daemon has created them (the store-grants service runs roles.sql again).
psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -f /finsent/roles.sql -f /finsent/set-passwords.sql
