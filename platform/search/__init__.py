"""Search: one text normaliser shared by stored search columns and queries."""
