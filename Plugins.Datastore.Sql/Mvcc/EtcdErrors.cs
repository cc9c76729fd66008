using Grpc.Core;

namespace Coracle.Plugins.Datastore.Sql.Mvcc;

/// <summary>An etcd error: the gRPC status code and the exact message etcd sends, so clients react alike.</summary>
public sealed class EtcdException : Exception
{
    /// <summary>Creates the error.</summary>
    public EtcdException(StatusCode code, string message)
        : base(message)
    {
        Code = code;
    }

    /// <summary>The gRPC status code.</summary>
    public StatusCode Code { get; }

    /// <summary>The error as a gRPC exception.</summary>
    public RpcException ToRpc() => new(new Status(Code, Message));
}

/// <summary>The etcd errors this server returns (etcd's api/v3rpc/rpctypes).</summary>
public static class EtcdErrors
{
    /// <summary>etcdserver: key is not provided.</summary>
    public static EtcdException EmptyKey => new(StatusCode.InvalidArgument, "etcdserver: key is not provided");

    /// <summary>etcdserver: key not found.</summary>
    public static EtcdException KeyNotFound => new(StatusCode.InvalidArgument, "etcdserver: key not found");

    /// <summary>etcdserver: value is provided.</summary>
    public static EtcdException ValueProvided => new(StatusCode.InvalidArgument, "etcdserver: value is provided");

    /// <summary>etcdserver: lease is provided.</summary>
    public static EtcdException LeaseProvided => new(StatusCode.InvalidArgument, "etcdserver: lease is provided");

    /// <summary>etcdserver: too many operations in txn request.</summary>
    public static EtcdException TooManyOps => new(StatusCode.InvalidArgument, "etcdserver: too many operations in txn request");

    /// <summary>etcdserver: duplicate key given in txn request.</summary>
    public static EtcdException DuplicateKey => new(StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request");

    /// <summary>etcdserver: mvcc: required revision has been compacted.</summary>
    public static EtcdException Compacted => new(StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted");

    /// <summary>etcdserver: mvcc: required revision is a future revision.</summary>
    public static EtcdException FutureRevision => new(StatusCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision");

    /// <summary>etcdserver: requested lease not found.</summary>
    public static EtcdException LeaseNotFound => new(StatusCode.NotFound, "etcdserver: requested lease not found");

    /// <summary>etcdserver: lease already exists.</summary>
    public static EtcdException LeaseExists => new(StatusCode.FailedPrecondition, "etcdserver: lease already exists");

    /// <summary>etcdserver: too large lease TTL.</summary>
    public static EtcdException LeaseTtlTooLarge => new(StatusCode.OutOfRange, "etcdserver: too large lease TTL");

    /// <summary>etcdserver: request is too large.</summary>
    public static EtcdException RequestTooLarge => new(StatusCode.InvalidArgument, "etcdserver: request is too large");

    /// <summary>etcdserver: server stopped.</summary>
    public static EtcdException Stopped => new(StatusCode.Unavailable, "etcdserver: server stopped");

    /// <summary>etcdserver: request timed out.</summary>
    public static EtcdException Timeout => new(StatusCode.Unavailable, "etcdserver: request timed out");

    /// <summary>An operation etcd has but a single SQL-backed member cannot do.</summary>
    public static EtcdException NotSupported(string what) => new(StatusCode.Unimplemented, $"etcdserver: {what} is not supported by this datastore");
}
