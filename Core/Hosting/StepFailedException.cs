namespace Coracle.Core.Hosting;

/// <summary>A start-up step that failed; its message names the step (<c>certificates, token and kubeconfigs: ...</c>).</summary>
internal sealed class StepFailedException : Exception
{
    public StepFailedException(string step, Exception inner)
        : base($"{step}: {inner?.Message}", inner)
    {
        Step = step;
    }

    /// <summary>The step's name, as logged (<c>step: NAME</c>).</summary>
    public string Step { get; }
}
