"""The command core: `Bot.handle(invocation, port)` for every platform.

`dispatch` holds `Bot`, its table of commands and its one error boundary; each
family of commands has its module: `generate` (video, keyframes, extend, quote),
`account` (quota, jobs, cancel), `admin`, `actions` (the buttons on a job's
card) and `help`. A handler returns the note to tell the user.
"""

from bot.commands.dispatch import COMMANDS, Bot

__all__ = ["COMMANDS", "Bot"]
