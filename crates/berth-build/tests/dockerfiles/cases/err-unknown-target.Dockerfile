FROM busybox AS build
# target: biuld
# error: target stage "biuld" could not be found (did you mean build?)
