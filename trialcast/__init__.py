"""The trialcast command line."""
