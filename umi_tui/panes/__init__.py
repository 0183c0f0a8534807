"""The four panes: core, working, archival, simulation. One pane per module."""
