import Sluice
import SluiceServeCommands

// The plain `sluice` tool: inspect runs and artifacts of any project, and serve (models, the dashboard). Pipelines
// written in Swift get the same command line from their own executable through `Sluice.main(pipelines:)`, which
// runs this tool for `serve`, `ui` and `profile`.
SluiceServeCommands.register()
await Sluice.main(pipelines: [])
