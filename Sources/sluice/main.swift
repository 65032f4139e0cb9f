import Sluice

// The plain `sluice` tool: inspect runs and artifacts of any project. Pipelines written in Swift get the
// same command line from their own executable through `Sluice.main(pipelines:)`.
await Sluice.main(pipelines: [])
