"""Live delivery into running Claude Code sessions through tmux (SPEC §8).

``tmux`` drives tmux, ``screen`` reads a pane's state, ``registry`` knows which
pane is whose, ``deliver`` types messages in, ``watch`` keeps delivering,
``status`` gives ``who`` its state column. Nothing is imported here: the
commands that do not type into panes never pay for this package.
"""
