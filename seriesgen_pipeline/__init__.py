"""seriesgen: turns recurring class series into bookable class sessions."""
