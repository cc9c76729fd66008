using Coracle.Core.Supervision;

namespace Coracle.Core.Tests.Supervision;

/// <summary>Which lines of a child's output count as errors in coracle's log.</summary>
public sealed class ErrorLinesTests
{
    [Theory]
    [InlineData("E1206 15:04:05.123456   12345 controller.go:114] loading OpenAPI spec failed")]
    [InlineData("F0101 00:00:00.000001       1 server.go:1] fatal: cannot listen")]
    [InlineData("time=\"2026-11-26T16:39:17Z\" level=error msg=\"failed to load plugin\" error=\"x\"")]
    [InlineData("time=\"2026-11-26T16:39:17Z\" level=fatal msg=\"containerd: exit\"")]
    [InlineData("level=error msg=boom")]
    [InlineData("{\"level\":\"error\",\"ts\":\"2026-11-26T16:39:17Z\",\"msg\":\"lost lease\"}")]
    [InlineData("panic: runtime error: invalid memory address or nil pointer dereference")]
    [InlineData("fatal error: concurrent map writes")]
    [InlineData("E1206 15:04:05.123456 x\r")]
    public void IsError_ErrorLine_True(string line) => Assert.True(ErrorLines.IsError(line));

    [Theory]
    [InlineData("I1206 15:04:05.123456   12345 controller.go:114] all good")]
    [InlineData("W1206 15:04:05.123456   12345 warnings.go:70] deprecated API")]
    [InlineData("E12 15:04:05 too short")]
    [InlineData("Error: something")]
    [InlineData("E120x 15:04:05.123456 not klog")]
    [InlineData("E12061 15:04:05.123456 five digits")]
    [InlineData("time=\"2026-11-26T16:39:17Z\" level=info msg=\"level=error is only text here\"")]
    [InlineData("time=\"2026-11-26T16:39:17Z\" level=warning msg=\"x\"")]
    [InlineData("level=errors")]
    [InlineData("  panic: indented text, not Go's runtime")]
    [InlineData("")]
    public void IsError_OrdinaryLine_False(string line) => Assert.False(ErrorLines.IsError(line));
}
