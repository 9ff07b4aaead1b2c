module Wal.Properties.ErrorTests
