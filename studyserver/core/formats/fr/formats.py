"""Formats de date français : ceux de Django, le fuseau horaire nommé après l'heure (TIME_ZONE)."""

DATETIME_FORMAT = "j F Y H:i T"
SHORT_DATETIME_FORMAT = "d/m/Y H:i T"
TIME_FORMAT = "H:i T"
