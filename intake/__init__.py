"""intake: collection daemon for the '五小' roadshow submissions."""
