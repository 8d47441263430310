"""A user's data: forgetting them (`forget`), giving them a copy (`export`), the files
and log lines kept outside the database (`files`), and making sure scrubbed text is
gone from the database files too (`compact`). The retention purge is `bot.retention`."""
