namespace Coracle.Plugins.Datastore.Sql.Mvcc;

/// <summary>Who answers: the ids etcd puts in every response header.</summary>
public sealed record EtcdMemberIdentity(ulong ClusterId, ulong MemberId, string Name)
{
    /// <summary>Derives stable ids from the member name.</summary>
    public static EtcdMemberIdentity For(string name)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("coracle/" + name));
        return new EtcdMemberIdentity(
            BitConverter.ToUInt64(hash, 0) & 0x7fff_ffff_ffff_ffff,
            BitConverter.ToUInt64(hash, 8) & 0x7fff_ffff_ffff_ffff,
            name);
    }
}
