"""Messaging commands: send, reply, show, inbox, wait, list, tail, channels, path."""
