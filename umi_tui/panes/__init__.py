"""The inspector's panes: one module per pane, each self-contained over `app.store`."""
