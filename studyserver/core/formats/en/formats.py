"""English date formats: Django's, with the time zone named after every time (TIME_ZONE)."""

DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
TIME_FORMAT = "P T"
