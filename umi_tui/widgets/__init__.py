"""Small reusable widgets and the formatting they share."""
