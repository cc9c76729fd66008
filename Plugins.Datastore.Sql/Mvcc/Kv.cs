using Coracle.Plugins.Datastore.Sql.Protos;
using Coracle.Plugins.Datastore.Sql.Storage;
using Google.Protobuf;

namespace Coracle.Plugins.Datastore.Sql.Mvcc;

/// <summary>Turns log rows into etcd messages.</summary>
internal static class Kv
{
    public static KeyValue From(LogRow row, bool keysOnly = false) => new()
    {
        Key = UnsafeByteOperations.UnsafeWrap(row.Key),
        CreateRevision = row.CreateRevision,
        ModRevision = row.Revision,
        Version = row.Version,
        Value = keysOnly ? ByteString.Empty : UnsafeByteOperations.UnsafeWrap(row.Value),
        Lease = row.Lease,
    };

    public static Event EventFrom(LogEvent e, bool withPrev)
    {
        var ev = new Event
        {
            Type = e.Row.Deleted ? Event.Types.EventType.Delete : Event.Types.EventType.Put,
            Kv = e.Row.Deleted
                ? new KeyValue { Key = UnsafeByteOperations.UnsafeWrap(e.Row.Key), ModRevision = e.Row.Revision }
                : From(e.Row),
        };
        if (withPrev && e.Prev is not null)
        {
            ev.PrevKv = From(e.Prev);
        }

        return ev;
    }

    public static byte[] Bytes(ByteString s) => s.Length == 0 ? [] : s.ToByteArray();
}
