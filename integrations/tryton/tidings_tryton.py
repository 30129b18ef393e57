# tidings adapter for trytond's bus (MIT, part of tidings: docs/tryton.md).
"""Durable publishing from trytond to tidings.

trytond's own ``Bus.publish`` sends ``NOTIFY "bus"`` in the business transaction: a
notification is lost while no tidings listens, and PostgreSQL refuses one of 8000 bytes or
more (the whole business transaction then fails). This ``Bus`` stores each message in the
table ``tidings_bus`` of the Tryton database instead, in the same transaction: it is
published if and only if that transaction commits, whatever its size, and tidings reads
it whenever it runs, in order, then deletes it.

Enable it in trytond.conf (the module must be on trytond's ``PYTHONPATH``)::

    [bus]
    class = tidings_tryton.Bus

It subclasses trytond's ``LongPollingBus``, so trytond's own ``/<db>/bus`` route keeps
working: messages that fit a NOTIFY are also sent there, marked so that tidings, which
reads them from the table, does not ingest them twice.
"""

import json
import logging
import threading
import uuid

from trytond.bus import LongPollingBus
from trytond.protocols.jsonrpc import JSONEncoder
from trytond.transaction import Transaction

__all__ = ['Bus', 'TABLE', 'DDL']

logger = logging.getLogger(__name__)

TABLE = 'tidings_bus'
# The same table as tidings' src/tryton/ingest.ts (ADAPTER_TABLE_DDL). ``xid`` is the
# writing transaction's id: tidings reads only rows of finished transactions, so rows
# committed out of id order are never skipped.
DDL = (
    'CREATE TABLE IF NOT EXISTS tidings_bus ('
    'id bigserial PRIMARY KEY, '
    'xid xid8 NOT NULL DEFAULT pg_current_xact_id(), '
    'channel text NOT NULL, '
    'message text NOT NULL)')
# Serialises the CREATE TABLE of concurrent first publishers: any bigint but the
# key tidings' leader holds (0x746964696e6773).
_DDL_LOCK = 0x7469645f64646c
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
_NOTIFY_MAX = 7900

_created = set()
_created_lock = threading.Lock()


def _ensure_table(database):
    "Creates the table once per database and process, in a transaction of its own."
    name = database.name
    if name in _created:
        return
    with _created_lock:
        if name in _created:
            return
        conn = database.get_connection()
        try:
            cursor = conn.cursor()
            cursor.execute('SELECT pg_advisory_xact_lock(%s)', (_DDL_LOCK,))
            cursor.execute(DDL)
            conn.commit()
        finally:
            database.put_connection(conn)
        _created.add(name)


class Bus(LongPollingBus):
    "trytond's long-polling bus, publishing durably to tidings."

    @classmethod
    def publish(cls, channel, message):
        transaction = Transaction()
        if not transaction.database.has_channel():
            logger.debug('Database backend does not support channels')
            return
        _ensure_table(transaction.database)
        message['message_id'] = str(uuid.uuid4())
        text = json.dumps(message, cls=JSONEncoder, separators=(',', ':'))
        cursor = transaction.connection.cursor()
        cursor.execute(
            'INSERT INTO tidings_bus (channel, message) VALUES (%s, %s)',
            (channel, text))
        # A wake-up for tidings, sent at commit; PostgreSQL folds the
        # identical ones of a transaction into one.
        cursor.execute('NOTIFY tidings_bus')
        payload = '{"channel":%s,"message":%s,"tidings":"stored"}' % (
            json.dumps(channel), text)
        if len(payload.encode('utf-8')) < _NOTIFY_MAX:
            cursor.execute('NOTIFY "%s", %%s' % cls._channel, (payload,))
