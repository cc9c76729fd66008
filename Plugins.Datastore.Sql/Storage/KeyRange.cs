namespace Coracle.Plugins.Datastore.Sql.Storage;

/// <summary>The shape of a key range; each shape has its own SQL condition.</summary>
public enum RangeKind
{
    /// <summary>Exactly one key.</summary>
    Single = 0,

    /// <summary>[start, end).</summary>
    Bounded = 1,

    /// <summary>Every key at or after start.</summary>
    Open = 2,

    /// <summary>No key (end at or before start).</summary>
    Empty = 3,
}

/// <summary>A key range with etcd's conventions: no end is one key, end "\0" is open-ended.</summary>
public readonly record struct KeyRange(RangeKind Kind, byte[] Start, byte[] End)
{
    /// <summary>Interprets an etcd key and range_end.</summary>
    public static KeyRange From(byte[] key, byte[] rangeEnd)
    {
        if (rangeEnd.Length == 0)
        {
            return new KeyRange(RangeKind.Single, key, []);
        }

        if (rangeEnd.Length == 1 && rangeEnd[0] == 0)
        {
            return new KeyRange(RangeKind.Open, key, []);
        }

        return key.AsSpan().SequenceCompareTo(rangeEnd) >= 0
            ? new KeyRange(RangeKind.Empty, key, rangeEnd)
            : new KeyRange(RangeKind.Bounded, key, rangeEnd);
    }

    /// <summary>True when the key lies in the range.</summary>
    public bool Contains(ReadOnlySpan<byte> key) => Kind switch
    {
        RangeKind.Single => key.SequenceEqual(Start),
        RangeKind.Bounded => key.SequenceCompareTo(Start) >= 0 && key.SequenceCompareTo(End) < 0,
        RangeKind.Open => key.SequenceCompareTo(Start) >= 0,
        _ => false,
    };

    /// <summary>True when the two ranges share a key.</summary>
    public bool Intersects(KeyRange other)
    {
        if (Kind == RangeKind.Empty || other.Kind == RangeKind.Empty)
        {
            return false;
        }

        if (Kind == RangeKind.Single)
        {
            return other.Contains(Start);
        }

        if (other.Kind == RangeKind.Single)
        {
            return Contains(other.Start);
        }

        // Two intervals [a, b) and [c, d) meet when a < d and c < b (an open end is infinite).
        var aBeforeD = other.Kind == RangeKind.Open || Start.AsSpan().SequenceCompareTo(other.End) < 0;
        var cBeforeB = Kind == RangeKind.Open || other.Start.AsSpan().SequenceCompareTo(End) < 0;
        return aBeforeD && cBeforeB;
    }

    /// <summary>The SQL condition on <c>x.name</c> for this shape.</summary>
    public static string Condition(RangeKind kind) => kind switch
    {
        RangeKind.Single => "x.name = @k",
        RangeKind.Bounded => "x.name >= @k AND x.name < @e",
        RangeKind.Open => "x.name >= @k",
        _ => "1 = 0",
    };
}
