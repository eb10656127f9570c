"""Getting data out: any list as CSV, Excel, JSON or Parquet, streamed so a million rows need little memory."""
