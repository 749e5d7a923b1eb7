"""The robustness phase's harness end (docs/design/load-and-attack.md 8.6): attack windows, crashes and revivals."""
