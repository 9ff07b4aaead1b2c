module Wal.Properties.GoldenTests
