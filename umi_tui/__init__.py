"""umi-tui: the terminal inspector for Umi memory stores."""
