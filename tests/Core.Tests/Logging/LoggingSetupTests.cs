using Coracle.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Coracle.Core.Tests.Logging;

/// <summary>The framework's own chatter (request lines, "Application started") stays off the console at info.</summary>
public sealed class LoggingSetupTests
{
    [Theory]
    [InlineData("Microsoft.AspNetCore.Hosting.Diagnostics")]
    [InlineData("Microsoft.AspNetCore.Server.Kestrel")]
    [InlineData("Microsoft.AspNetCore.Routing.EndpointMiddleware")]
    [InlineData("Grpc.AspNetCore.Server.ServerCallHandler")]
    [InlineData("Microsoft.Hosting.Lifetime")]
    [InlineData("Microsoft.Extensions.Hosting.Internal.Host")]
    [InlineData("System.Net.Http.HttpClient.Default.LogicalHandler")]
    public void Create_InfoLevel_FrameworkCategoriesOnlyFromWarning(string category)
    {
        using var loggers = LoggingSetup.Create("text", "info");
        var logger = loggers.CreateLogger(category);

        Assert.False(logger.IsEnabled(LogLevel.Information));
        Assert.True(logger.IsEnabled(LogLevel.Warning));
    }

    [Theory]
    [InlineData("debug")]
    [InlineData("trace")]
    public void Create_DebugOrTraceLevel_FrameworkCategoriesShown(string level)
    {
        using var loggers = LoggingSetup.Create("text", level);

        Assert.True(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
        Assert.True(loggers.CreateLogger("Microsoft.Hosting.Lifetime").IsEnabled(LogLevel.Debug));
    }

    [Theory]
    [InlineData("coracle")]
    [InlineData("kube-apiserver")]
    [InlineData("supervisor")]
    public void Create_InfoLevel_CoracleCategoriesAtInformation(string category)
    {
        using var loggers = LoggingSetup.Create("text", "info");

        Assert.True(loggers.CreateLogger(category).IsEnabled(LogLevel.Information));
        Assert.False(loggers.CreateLogger(category).IsEnabled(LogLevel.Debug));
    }
}
