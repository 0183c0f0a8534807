"""Modal screens the panes open: confirm, set key, expire, entity detail and edit."""
