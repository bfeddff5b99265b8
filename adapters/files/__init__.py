"""Files in and out: the legacy register's CSV/XLSX, exports and letters."""
