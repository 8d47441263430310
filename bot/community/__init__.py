"""What a server's own admins control: their settings (`settings`), where jobs may
start (`where`), the blocklist (`blocklist`), the safety checker and flagged results
(`safety`), and the audit trail of admin actions (`audit`).

The operator's [safety] section gives every server's defaults; a server's changes
live in the store (`bot.store.community`). The platform sections' allow-lists stay
the operator's hard limits, checked by the adapters before anything here.
"""
