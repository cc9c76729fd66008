using Coracle.Plugins.Datastore.Sql.Storage;

namespace Coracle.Plugins.Datastore.Sql.Tests.Support;

/// <summary>Makes a fresh, empty store for one test.</summary>
public interface IStoreFactory
{
    Task<SqlDialect> NewStoreAsync(string dir);
}

public sealed class SqliteStores : IStoreFactory
{
    public Task<SqlDialect> NewStoreAsync(string dir) => Task.FromResult(SqlDialects.Sqlite(Path.Combine(dir, "state.db")));
}
