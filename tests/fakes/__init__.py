"""Local fakes of the platforms outside chatcrm (Slack Web API, ...), for tests and benchmarks."""
