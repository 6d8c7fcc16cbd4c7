"""A minimal `sendmail -t` for tests: read a message on stdin, deliver it by SMTP.

Usage: python sendmail.py HOST PORT [CAFILE]. Recipients come from the To/Cc headers,
as with `sendmail -i -t`; with CAFILE the session uses STARTTLS and verifies the server.
"""

from __future__ import annotations

import email
import email.utils
import smtplib
import ssl
import sys


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    raw = sys.stdin.buffer.read()
    msg = email.message_from_bytes(raw)
    recipients = [
        a for _, a in email.utils.getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))
    ]
    sender = email.utils.parseaddr(msg.get("From", ""))[1]
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        if len(sys.argv) > 3:
            smtp.starttls(context=ssl.create_default_context(cafile=sys.argv[3]))
        smtp.sendmail(sender, recipients, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
