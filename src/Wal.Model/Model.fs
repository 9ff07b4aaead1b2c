module Wal.Model.Placeholder
