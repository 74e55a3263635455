"""What a participant's browser session holds (read by the views and the exposure timing)."""

#: The tokens of the participants this browser started (most recent last).
SESSION_TOKENS = "floodlight_participants"
