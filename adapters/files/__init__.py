"""Files in and out: CSV, XLSX and JSON Lines exports of the register."""
