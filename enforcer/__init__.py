"""Makes a Spotify library obey a personal artist blocklist."""
